from app.benchmark.cli import main

main()
