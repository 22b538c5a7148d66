class Store:
    def fetch(self) -> list[str]:
        return ["1", "2", "3"]

    def fetch_all(self) -> list[str]:
        return self.fetch()
