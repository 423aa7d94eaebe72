"""The one typed configuration of a run and how it is assembled from its sources."""
