from etcdpy.app.cli import main

main()
