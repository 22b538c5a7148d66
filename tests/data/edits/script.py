#!/usr/bin/env python3
def greet(name):
    return name

if __name__ == '__main__':
    print(greet('x'))
