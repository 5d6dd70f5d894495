"""One APIRouter per section of the API reference; app.py includes them all."""
