# café 😀
def greet(name):
    return '😀' + name

greet('x')
