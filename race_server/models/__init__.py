"""Model store: the DeepRacer model folder format, validation, import and export."""
