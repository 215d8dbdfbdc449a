from etcdpy.bench.cli import main

main()
