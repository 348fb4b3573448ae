"""Township ledgers (台账) as offices make them, written by writers that are
not civlink's own (openpyxl for .xlsx, xlwt for .xls), for tests/it/spreadsheets.rs.

    python ledgers.py OUT_DIR

writes title.xlsx, two_rows.xlsx, sheets.xlsx and ledger.xls into OUT_DIR and
prints one JSON object: the ID numbers used, so the test can check them.
"""

import datetime
import json
import sys
from pathlib import Path

import openpyxl
import xlwt
from openpyxl.styles import Alignment

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def check_digit(first17):
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def numeric_id(prefix, start):
    """The first valid ID from `prefix` + a sequence whose check digit is a digit."""
    seq = start
    while True:
        first17 = f"{prefix}{seq:03d}"
        c = check_digit(first17)
        if c != "X":
            return first17 + c
        seq += 1


def lossy_id(prefix, start):
    """A valid ID whose 15-significant-digit form (what Excel keeps) is not valid."""
    seq = start
    while True:
        full = numeric_id(prefix, seq)
        cut = full[:15] + "000"
        if check_digit(cut[:17]) != cut[17] and full[15:] != "000":
            return full
        seq += 1


HEADER = ["序号", "姓名", "身份证号", "编码", "年龄", "出生日期", "金额"]
DATE = "yyyy-mm-dd"


def title_workbook(path, ids):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "低保人员"
    ws["A1"] = "湟中区2025年低保人员台账"
    ws.merge_cells("A1:G1")
    ws["A1"].alignment = Alignment(horizontal="center")
    ws["A2"] = "填报单位：湟中区民政局"
    ws["F2"] = "单位：元"
    ws.append(HEADER)
    rows = [
        [1, "张三", ids["text"], "01", 30, datetime.date(1994, 5, 1), 1200.5],
        [2, "李四", int(ids["number_intact"]), "02", 40, datetime.date(1984, 6, 2), 800],
        [3, "王五", float(ids["number_lost"]), "03", 50, datetime.date(1974, 7, 3), 600],
        [4, "赵六", ids["serial"], "04", 60, 45292, 500],
        [5, "孙七", ids["fifth"], "05", 70, datetime.date(1954, 8, 4), 300],
    ]
    for row in rows:
        ws.append(row)
    for r in range(4, 9):
        if isinstance(ws.cell(row=r, column=6).value, datetime.date):
            ws.cell(row=r, column=6).number_format = DATE
    ws.append(["合计", None, None, None, None, None, 3400.5])
    ws.append(["制表人：周八", None, None, "审核人：吴九", None, "填报日期：2025-01-05"])
    wb.save(path)


def two_rows_workbook(path, ids):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "家庭成员"
    ws["A1"], ws["B1"], ws["D1"], ws["E1"] = "序号", "成员信息", "编码", "年龄"
    ws["B2"], ws["C2"] = "姓名", "身份证号"
    ws.merge_cells("A1:A2")
    ws.merge_cells("B1:C1")
    ws.merge_cells("D1:D2")
    ws.merge_cells("E1:E2")
    ws.append([1, "钱一", ids["text"], "11", 33])
    ws.append([2, "钱二", ids["fifth"], "12", 8])
    ws.append(["小计", None, None, None, 41])
    wb.save(path)


def sheets_workbook(path, ids):
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "说明"
    notes["A1"] = "本表由各乡镇填报"
    for name, people in [("乡镇一", [("甲", ids["text"])]),
                         ("乡镇二", [("乙", ids["fifth"]), ("丙", ids["serial"])]),
                         ("乡镇隐藏", [("丁", ids["number_intact"])])]:
        ws = wb.create_sheet(name)
        ws.append(["姓名", "身份证号", "编码"])
        for person, id_number in people:
            ws.append([person, id_number, "21"])
        if name == "乡镇隐藏":
            ws.sheet_state = "hidden"
    wb.save(path)


def xls_workbook(path, ids):
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet("低保人员")
    ws.write_merge(0, 0, 0, 6, "某乡2025年低保台账")
    for c, name in enumerate(HEADER):
        ws.write(1, c, name)
    date = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    rows = [
        [1, "张三", ids["text"], "01", 30, datetime.date(1994, 5, 1), 1200.5],
        [2, "王五", float(ids["number_lost"]), "03", 50, datetime.date(1974, 7, 3), 600],
        [3, "孙七", ids["fifth"], "05", 70, datetime.date(1954, 8, 4), 300],
    ]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row):
            if isinstance(value, datetime.date):
                ws.write(r, c, value, date)
            else:
                ws.write(r, c, value)
    ws.write(5, 0, "合计")
    ws.write(5, 6, 2100.5)
    # A two-row header in the old format too: its merges come from the BIFF records.
    members = book.add_sheet("家庭成员")
    members.write_merge(0, 1, 0, 0, "序号")
    members.write_merge(0, 0, 1, 2, "成员信息")
    members.write(1, 1, "姓名")
    members.write(1, 2, "身份证号")
    members.write_merge(0, 1, 3, 3, "编码")
    members.write_merge(0, 1, 4, 4, "年龄")
    for r, row in enumerate([[1, "钱一", ids["text"], "11", 33], [2, "钱二", ids["fifth"], "12", 8]], start=2):
        for c, value in enumerate(row):
            members.write(r, c, value)
    book.save(str(path))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    ids = {
        "text": numeric_id("63012119940501", 11),
        # A first-generation 15-digit ID: it fits Excel's 15 digits, intact as a number.
        "number_intact": "630121840602021",
        "number_lost": lossy_id("63012119740703", 31),
        "serial": numeric_id("63012119640101", 41),
        "fifth": numeric_id("63012119540804", 51),
    }
    title_workbook(out / "title.xlsx", ids)
    two_rows_workbook(out / "two_rows.xlsx", ids)
    sheets_workbook(out / "sheets.xlsx", ids)
    xls_workbook(out / "ledger.xls", ids)
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
