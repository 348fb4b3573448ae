"""Regenerates population.xlsx, the fixture of the xlsx reader tests.

Usage (any Python 3 with openpyxl):
    python3 -m venv /tmp/xlsxvenv && /tmp/xlsxvenv/bin/pip install openpyxl
    /tmp/xlsxvenv/bin/python connectors/tests/data/make_xlsx.py

The output is deterministic apart from the workbook's creation timestamp,
which is pinned below, so re-running it yields an equivalent file.
"""

import datetime
import pathlib

import openpyxl

HERE = pathlib.Path(__file__).parent

wb = openpyxl.Workbook()
wb.properties.created = datetime.datetime(2024, 1, 1)
wb.properties.modified = datetime.datetime(2024, 1, 1)

# Sheet 1: the data sheet, exercising every cell type.
ws = wb.active
ws.title = "人口"
ws.append(["公民身份号码 ", "姓名", "性别", "出生日期", "登记时间", "月补助",
           "是否户主", "区划", "姓名", None, "备注"])
# Row 2: text ID, Chinese text, a date, a date-time, a float, a bool, an integer.
ws.append(["110101199003071234", "张三", "男", datetime.date(1990, 3, 7),
           datetime.datetime(2020, 1, 2, 3, 4, 5), 1234.5, True, 630102,
           "别名", None, "  留空格  "])
# Row 3: an ID typed as a number (loses its last digits), empty cells, 12-digit integer.
ws.append([110101199003071234, "李四", "女", None, None, 1000, False,
           630102000000, None, None, None])
# Row 4 stays empty: blank rows are not data rows.
# Row 5: an error cell -> reject.
ws.cell(row=5, column=1, value="11010119900307123X")
ws.cell(row=5, column=2, value="王五")
ws.cell(row=5, column=3, value="#N/A")
# Row 6: a value beyond the header's last column -> ragged reject.
for col, value in enumerate(["110101199003071234", "赵六"], start=1):
    ws.cell(row=6, column=col, value=value)
ws.cell(row=6, column=12, value="多余")
# Row 7: a negative number, a time of day, a huge float, a small fraction.
ws.cell(row=7, column=1, value="-5")
ws.cell(row=7, column=2, value=-5)
ws.cell(row=7, column=4, value=datetime.time(13, 30, 0))
ws.cell(row=7, column=6, value=1e20)
ws.cell(row=7, column=8, value=0.125)

# Sheet 2: a notes sheet with one cell.
notes = wb.create_sheet("说明")
notes["A1"] = "本表由公安厅导出"

# Sheet 3: a table that starts at B3 (title rows above are empty).
offset = wb.create_sheet("偏移")
offset["B3"] = "a"
offset["C3"] = "b"
offset["B4"] = "1"
offset["C4"] = "2"
offset["A5"] = "left of the header"
offset["B5"] = "3"
offset["B6"] = "4"

# Sheet 4: empty.
wb.create_sheet("空")

wb.save(HERE / "population.xlsx")
