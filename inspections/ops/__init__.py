"""Running the installation: health, database reachability."""
