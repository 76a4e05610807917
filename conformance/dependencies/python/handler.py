import six


def version(event, context):
    return {"six": six.__version__}
