"""Using registered models: batch scoring and which texts to label next."""
