"""Code every app may use: the bottom layer, below ``accounts``. Plain Python, no models."""
