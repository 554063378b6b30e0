"""What the platform knows of its images: the images themselves, defect classes, splits,
defect boxes (the annotations people and imports give), dataset import and export."""
