"""The ``zkinfer`` command line: the outermost ring, parsing arguments and rendering results."""
