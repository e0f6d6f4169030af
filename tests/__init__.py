"""Unit tests of the helpers package and static checks of the notebooks."""
