"""HTTP and websocket endpoints: thin, validate at the edge, call domain code."""

from starlette.convertors import IntegerConvertor, register_url_convertor


class _Int64Convertor(IntegerConvertor):
    """``{x:int}`` path parameters hold database ids (int64): at most 18 digits, so a longer number
    is an unknown path (a JSON 404) instead of an overflow deep in a query. Registered here, before
    any route module is imported, because routes compile their convertors when they are built."""

    regex = "[0-9]{1,18}"


register_url_convertor("int", _Int64Convertor())
