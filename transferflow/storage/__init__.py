"""Where things are kept: the path policy, the artefact store, the model registry."""
