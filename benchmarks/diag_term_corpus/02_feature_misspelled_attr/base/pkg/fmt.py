from pkg.models import User
