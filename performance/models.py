"""Models arrive with their issue; the app shell is installed so migrations stay in order."""
