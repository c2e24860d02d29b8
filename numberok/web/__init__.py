"""
The admin web server: the settings page, the JSON API, C{/metrics}, HTTP
ingest and their authentication.  L{numberok.web.service} runs it;
L{numberok.web.resource} is the tree of its URLs; docs/admin.rst describes
it.
"""
