"""The terminal UI's WSGI application (settings: etcnet.terminal.web.settings)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
