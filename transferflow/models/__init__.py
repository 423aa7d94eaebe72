"""The ``wide-deep`` Keras network, its training and its baselines."""
