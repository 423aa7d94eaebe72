"""Reading labelled tables, splitting them, and the run's data stages."""
