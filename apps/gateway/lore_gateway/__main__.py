from lore_gateway.main import run

run()
