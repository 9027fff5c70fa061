"""Fake of Blackmagic's DaVinciResolveScript module (the import path scripts use outside the menu)."""

_APP = None


def scriptapp(name, *args):
    if name == "Resolve":
        return _APP
    if name == "Fusion" and _APP is not None:
        return _APP.Fusion()
    return None
