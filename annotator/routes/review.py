urlpatterns: list = []
NAV: list = []
