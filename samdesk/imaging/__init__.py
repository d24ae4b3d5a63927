"""Reading images of every kind into numpy arrays (imports neither torch nor Qt)."""
