"""Tests of ``bootstrap.pg``, one file per module (a package, so that their names cannot clash with others')."""
