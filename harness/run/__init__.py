"""`vcrypt run`: the launcher and the pytest plugin, with everything a run session uses.

launch.py starts pytest; plugin.py is the pytest plugin (options, the run object, verdicts), with
fixtures.py, session_providers.py and lab_providers.py for what the suites are handed. The rest are
the plugin's parts: preflight, selection, deviations, version gate, progress lines, the ledger
(cleanup.py) and the marks on created objects (markers.py), run ids and run folders.
"""
