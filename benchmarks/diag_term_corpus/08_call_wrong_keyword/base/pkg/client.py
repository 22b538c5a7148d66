from pkg.net import connect
