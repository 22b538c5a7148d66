# -*- coding: latin-1 -*-
s = 'été'
def greet(name):
    return s + name

greet('x')
