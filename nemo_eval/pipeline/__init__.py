"""The launcher and the summary steps (the last stage): ties the others together."""
