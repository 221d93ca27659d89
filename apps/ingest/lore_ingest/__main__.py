from lore_ingest.main import run

run()
