"""
The admin web server: the settings page, the JSON API, HTTP ingest and
their authentication.  tap.py builds it with
L{numberok.web.service.makeAdminService}; docs/admin.rst describes it.
"""
