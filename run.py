"""`python run.py` serves the app; `FLASK_APP=run.py flask …` runs any command."""
import os

from app import create_app

app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=app.config["PORT"])
