"""The clearing pages' reads: the reports (数据统计) over what the day runs stored,
the lane payments (交款信息统计表) from the transaction store, the issuance
figures, the drill-down from a total to the transactions behind it, and every
table as an Excel workbook.

Every figure is an aggregate the database computes (`DayFigure`, `OwnerShare`,
`Position`, the store's GROUP BY); the drill-down pages a day's entries by
primary key and fetches only the page's transactions, so a page never holds a
day in memory. Money stays integer fen here; the pages and the workbooks show
yuan (fen / 100, two decimals) or 万元 (`wan`, half-up to the hundredth).
Personal data (card numbers, plates) is masked unless the viewer's role may
see it (`reveal`). docs/clearing-reports.md describes the pages.
"""
