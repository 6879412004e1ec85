"""The front servers of the provincial center (数据交换前置服务器): the signature
server, the link with the national center and the banks (docs/exchange.md)."""
