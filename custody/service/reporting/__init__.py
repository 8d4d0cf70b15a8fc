"""Reports: the figures a sheriff, a county board and a legislature ask for."""
