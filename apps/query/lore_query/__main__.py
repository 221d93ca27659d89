from lore_query.main import run

run()
