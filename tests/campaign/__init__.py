"""The bad-input campaign: hundreds of wrong files, options, specs, folders, plugins and API calls
thrown at the real command line and the Python API (``tests/test_bad_inputs.py`` runs it)."""
