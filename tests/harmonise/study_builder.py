"""Hand-written centre exports for the harmonisation tests: every convention the issue lists.

Each centre is written the way a real one would send it; the expected canonical values are stated
beside the data in the tests, worked out by hand.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl

__all__ = ["write_study"]

CENTRES_TOML = """\
[centres.de-koeln]
country = "DE"
files = ["patienten.csv", "therapien.csv", "staging.csv", "verlauf.csv"]

[centres.fr-nice]
country = "FR"
files = ["crf.xlsx"]

[centres.us-austin]
country = "US"
files = ["patients.csv", "treatments.csv", "assessments.csv"]

[centres.ch-chur]
country = "CH"
files = ["export.csv", "dictionary.csv"]

[centres.nl-broken]
country = "NL"
files = ["crf.xlsx", "data.csv"]
"""


def _write(path: Path, text: str, encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))


def write_study(root: Path) -> Path:
    """Write the hand-made study into ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "centres.toml").write_text(CENTRES_TOML, encoding="utf-8")
    _koeln(root / "de-koeln")
    _nice(root / "fr-nice")
    _austin(root / "us-austin")
    _chur(root / "ch-chur")
    _broken(root / "nl-broken")
    return root


def _koeln(folder: Path) -> None:
    # semicolon, Latin-1 (ä, ö in words), decimal comma, DD.MM.YYYY, German words,
    # "nicht bekannt" as missing, LDH in µkat/L with the centre's ULN
    _write(folder / "patienten.csv", (
        "Pat-Nr;Geschlecht;Geburtsjahr;Diagnosedatum;Primärtumor;Stadium;M-Kategorie;"
        "Hirnmetastasen;BRAF-Status;ECOG;LDH;LDH Einheit;LDH OGW\n"
        "K001;m;1950;13.05.2010;kutan;IV;M1c;ja;Wildtyp;1;4,5;µkat/L;4,13\n"
        "K002;w;1961;02.03.2011;akral;IV;M1a;nein;V600E;0;nicht bekannt;µkat/L;4,13\n"
        "K003;w;1970;nicht bekannt;unbekannter Primärtumor;III inoperabel;M0;nein;Wildtyp;7;3,1;µkat/L;4,13\n"
    ), "latin-1")
    _write(folder / "therapien.csv", (
        "Pat-Nr;Therapielinie;Medikament;Beginn;Ende;Abbruchgrund\n"
        "K001;1;Ipi/Nivo;01.02.2014;15.04.2014;Progress\n"
        "K001;2;Dacarbazin;02.05.2014;20.07.2014;Progress\n"
        "K001;2;Dacarbazin;02.05.2014;20.07.2014;Progress\n"  # duplicated row
        "K002;1;Pembrolizumab;10.01.2015;30.06.2015;Toxizität\n"
        "K002;2;Carbo/Pacli;01.08.2015;25.07.2015;abgeschlossen\n"  # end before start
        "K002;3;Studienmedikation XR-17;01.10.2015;;\n"  # unknown drug
        "K003;1;Temodal;31.02.2016;;\n"  # unparseable date
    ), "latin-1")
    _write(folder / "staging.csv", (
        "Pat-Nr;Datum;Ansprechen\n"
        "K001;20.03.2014;Progress\n"
        "K001;25.06.2014;partielle Remission\n"
        "K002;15.03.2015;stabile Erkrankung\n"
        "K002;01.06.2015;gemischtes Ansprechen\n"  # unknown response word
    ), "latin-1")
    _write(folder / "verlauf.csv", (
        "Pat-Nr;Vitalstatus;Letzter Kontakt;Todesdatum\n"
        "K001;verstorben;01.12.2014;01.12.2014\n"
        "K002;lebend;30.12.2016;\n"
        "K003;lebend;01.01.2017;\n"
        "K009;lebend;01.01.2017;\n"  # a patient the patient table does not list
    ), "latin-1")


def _nice(folder: Path) -> None:
    # XLSX with a notes row above the header, dates as real date cells, French words
    folder.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    patients = book.active
    patients.title = "patients"
    patients.append(["Export du 01/03/2019 - ne pas modifier"])
    patients.append(["N° patient", "Sexe", "Année de naissance", "Date du diagnostic", "Site primaire",
                     "Stade", "Métastases cérébrales", "Statut BRAF", "ECOG", "LDH", "Unité LDH", "LSN LDH"])
    patients.append(["N-01", "H", 1948, dt.datetime(2009, 11, 3), "cutané", "IV M1c", "oui", "muté", 2,
                     310, "U/L", 250])
    patients.append(["N-02", "F", 1955, dt.datetime(2012, 1, 20), "muqueux", "IV", "non", "sauvage", "NA",
                     "NA", "U/L", 250])
    treatments = book.create_sheet("traitements")
    treatments.append(["N° patient", "Traitement", "Date de début", "Date de fin", "Motif d'arrêt"])
    treatments.append(["N-01", "Keytruda", dt.datetime(2015, 3, 1), dt.datetime(2015, 9, 1), "progression"])
    treatments.append(["N-01", "Déticène", dt.datetime(2015, 10, 1), dt.datetime(2015, 12, 15), "toxicité"])
    treatments.append(["N-02", "Yervoy", dt.datetime(2013, 5, 2), dt.datetime(2013, 8, 1), "progression"])
    treatments.append(["N-02", "Muphoran", dt.datetime(2013, 9, 10), None, None])
    responses = book.create_sheet("évaluations")
    responses.append(["N° patient", "Date", "Réponse"])
    responses.append(["N-01", dt.datetime(2015, 6, 1), "MP"])
    responses.append(["N-01", dt.datetime(2015, 12, 1), "RP"])
    responses.append(["N-02", dt.datetime(2013, 11, 5), "maladie stable"])
    followup = book.create_sheet("suivi")
    followup.append(["Informations de suivi", None, None])  # a merged group header
    followup.merge_cells("A1:C1")
    followup.append(["N° patient", "Statut vital", "Date des dernières nouvelles"])
    followup.append(["N-01", "décédé", dt.datetime(2016, 4, 2)])
    followup.append(["N-02", "vivant", dt.datetime(2017, 2, 1)])
    book.save(folder / "crf.xlsx")


def _austin(folder: Path) -> None:
    # comma CSV, UTF-8 with BOM, MM/DD/YYYY (a day above 12 settles it), age instead of birth
    # year, "unk" and "NA" as missing, LDH in U/L with no unit column
    _write(folder / "patients.csv", (
        "patient_id,sex,age_at_chemo,diagnosis_date,primary_site,stage,brain_mets,braf_status,ecog,ldh,ldh_uln\n"
        "A1,female,61,03/25/2011,cutaneous,IV,no,V600E,1,480,\"225\"\n"
        "A2,male,unk,11/02/2010,uveal,IV,yes,wild type,NA,190,225\n"
        "A3,male,55,01/05/2012,\"cutaneous, trunk\",IV,no,wild type,0,200,225\n"  # unknown site
    ), "utf-8-sig")
    _write(folder / "treatments.csv", (
        "patient_id,line,drug,start_date,end_date,reason_stopped,progression_date\n"
        "A1,1,ipilimumab,04/15/2013,07/01/2013,progression,06/20/2013\n"
        "A1,2,carboplatin + paclitaxel,08/20/2013,11/30/2013,completed,\n"
        "A2,1,nivolumab,02/01/2015,05/01/2015,progression,04/28/2015\n"
        "A2,2,,TMZ,06/01/2015,08/15/2015,progression,\n"  # a row shifted by a column
        "A3,1,pembrolizumab,03/01/2016,06/01/2016,progression,02/01/2016\n"  # progression before start
    ), "utf-8-sig")
    _write(folder / "assessments.csv", (
        "patient_id,assessment_date,response\n"
        "A1,06/20/2013,progressive disease\n"
        "A1,10/15/2013,SD\n"
        "A3,05/01/2016,PD\n"
    ), "utf-8-sig")


def _chur(folder: Path) -> None:
    # a REDCap flat export with repeating instruments and its data dictionary (coded choices)
    _write(folder / "dictionary.csv", (
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
        '"Choices, Calculations, OR Slider Labels","Field Note"\n'
        'record_id,baseline,,text,Record ID,,\n'
        'q1,baseline,,radio,Sex,"1, Male | 2, Female",\n'  # a name known only by its label
        'yob,baseline,,text,Year of birth,,\n'
        'dx_date,baseline,,text,Date of diagnosis,,\n'
        'stage,baseline,,dropdown,Stage,"1, IV | 2, III unresectable | 3, III",\n'
        'brain_mets,baseline,,yesno,Brain metastases,,\n'
        'last_contact,followup,,text,Last contact,,\n'
        'vital_status,followup,,radio,Vital status,"0, alive | 1, dead",\n'
        'drug,therapy,,text,Drug,,\n'
        'start_date,therapy,,text,Start,,\n'
        'end_date,therapy,,text,End,,\n'
        'assessment_date,assessment,,text,Assessment date,,\n'
        'response,assessment,,radio,Response,"1, CR | 2, PR | 3, SD | 4, PD | 5, NE",\n'
    ), "utf-8")
    _write(folder / "export.csv", (
        "record_id,redcap_repeat_instrument,redcap_repeat_instance,q1,yob,dx_date,stage,brain_mets,"
        "last_contact,vital_status,drug,start_date,end_date,assessment_date,response\n"
        "C-7,,,2,1966,2013-04-02,1,0,2018-03-01,0,,,,,\n"
        "C-7,therapy,1,,,,,,,,nivolumab,2015-01-05,2015-06-01,,\n"
        "C-7,therapy,2,,,,,,,,nab-paclitaxel,2015-07-01,2015-10-01,,\n"
        "C-7,assessment,1,,,,,,,,,,,2015-04-01,4\n"
        "C-7,assessment,2,,,,,,,,,,,2015-09-01,2\n"
    ), "utf-8")


def _broken(folder: Path) -> None:
    # a truncated workbook and binary junk named .csv: reported, the other centres still load
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crf.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    (folder / "data.csv").write_bytes(bytes(range(256)) * 4)
