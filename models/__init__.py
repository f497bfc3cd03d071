"""The shipped model directories. setup.py installs this directory as the package
rnnsearch.models (its */* files as package data), so that a model here is found through the
import system the same way in a wheel, an install and an editable install."""
