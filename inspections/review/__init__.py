"""Predictions and the people who answer them: inference, the image's latest prediction,
reviews, the review queue, look-alike groups."""
