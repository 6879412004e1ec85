import os

from django.core.wsgi import get_wsgi_application

from etcnet.core import runtime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etcnet.settings")
application = get_wsgi_application()
# What start-up loaded lives as long as the process: out of the collector's way.
runtime.settle()
