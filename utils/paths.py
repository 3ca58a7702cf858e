"""Checks of paths given on the command line, made before anything runs."""
import os


def nearest_existing(path):
    """`path` itself if it exists, else its closest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def folder_problem(path):
    """Why `path` cannot be a folder to write into (an existing file, or under a file, or under a folder
    that cannot be written), or None."""
    existing = nearest_existing(path)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written into"
    return None
