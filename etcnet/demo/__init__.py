"""The demo: data for a first look at etcnet, made through every app's services.

``loader`` holds it; ``etcnet load_demo`` (and ``etcnet center demo``) run it. The
package sits above every app, so no app imports another to build the demo."""
