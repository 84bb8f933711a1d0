"""A small sentiment cue for posts not in English: VADER reads them as neutral.

VADER knows English words only, so a Russian "приложение не работает, верните
деньги" scores 0 and the VADER word the classifier reads says "neutral" for
every non-English post (non-English dev sentiment 0.63 against 0.83 for
English). These lists, written for this project, hold a few dozen stems per
language that people use when something is broken, money is lost or they are
pleased. A post's hits give one word like VADER's (``zzpneg2`` ... ``zzppos2``).

A cue matches at the start of a word (``работ`` matches работает), after the
post and the cue are lower-cased and their diacritics folded the way
``beacons.nlp.features.fold`` does (people type "calismiyor" for
"çalışmıyor"); a cue ending in ``$`` matches a whole word only. Japanese,
Chinese and Korean cues match anywhere (no spaces between words), and those
three share one list, as do Russian and Ukrainian, because the language
detector confuses them on short posts.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

_UNDECOMPOSED = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe"})

# (negative cues, positive cues) per language.
CUES: dict[str, tuple[str, str]] = {
    "ru": (
        "не работ|не включ|не загруж|не приход|не пришл|не могу|не отвеча|сломал|слома|ошибк|вылета|завис|глюч|"
        "тормоз|возврат|верните|списал|дважды|двойн|ужас|отвратит|плох|проблем|жалоб|разочаров|обман|мошен|"
        "бесит|пропал|потерял|заблокир|кошмар|безобраз",
        "спасибо|благодар|люблю|обожаю|отличн|прекрасн|супер|класс|рекоменд|советую|лучш|удобн|доволен|довольн|"
        "восторг|молодц|круто|шикарн|замечательн",
    ),
    "uk": (
        "не працю|не вмика|не завантаж|не прийш|не можу|не відповіда|зламал|злама|помилк|виліта|завис|глюч|"
        "гальму|повернен|поверніть|списал|двічі|подвійн|жах|поган|проблем|скарг|розчаров|обман|шахра|пропал|"
        "втрат|заблок|кошмар",
        "дякую|дяку|вдячн|люблю|обожнюю|чудов|відмінн|супер|клас|рекоменд|раджу|найкращ|зручн|задоволен|молодц|круто",
    ),
    "tr": (
        "calism|acilmiyor|acilmadi|giremiyor|bozul|bozuk|hata|cokuyor|coktu|donuyor|dondu|iade|iki kez|iki kere|"
        "cift cekim|rezalet|berbat|kotu|sikayet|sorun|problem|gelmedi|ulasmadi|engellendi|kilitlendi|"
        "cevap vermiyor|yavas|maalesef|dolandir|magdur",
        "tesekkur|sagol|harika|mukemmel|super|bayildim|seviyorum|tavsiye|oneririm|cok iyi|memnun|basarili|"
        "guzel|en iyi|hizli|muthis",
    ),
    "pl": (
        "nie dziala|nie moge|nie dotarl|nie odpowiada|zepsu|blad|bledu|bledy|zawiesz|crash|zwrot|pieniadz|"
        "dwukrotnie|podwojn|okropn|fataln|beznadziej|problem|reklamac|rozczarow|oszust|wolno|zablokow|"
        "brak odpowiedzi|skandal|porazka",
        "dziekuj|dzieki|uwielbiam|kocham|swietn|super|polecam|rewelac|najlepsz|wygodn|zadowolon|doskonal|"
        "ekstra|szybk|brawo",
    ),
    "cs": (
        "nefung|nejde|nemuzu|nedoslo|neodpovid|rozbit|chyba|chybu|chyby|pada|zamrz|vraceni|vratte|penize|"
        "dvakrat|strasn|hrozn|spatn|problem|reklamac|zklam|podvod|pomal|zablokov|katastrof",
        "dekuj|diky|miluju|miluji|skvel|super|doporucuj|nejlepsi|pohodln|spokojen|vyborn|perfektn|rychl|paradn",
    ),
    "de": (
        "funktioniert nicht|geht nicht|kaputt|defekt|fehler|absturz|sturzt ab|hangt|erstatt|geld zuruck|"
        "doppelt|abgebucht|schrecklich|furchtbar|mies|schlecht|enttausch|argerlich|kann nicht|"
        "nicht angekommen|problem|beschwerde|betrug|langsam|gesperrt|keine antwort|unverschamt|katastroph",
        "danke|dank$|liebe|toll|super|empfehl|genial|klasse|hervorragend|perfekt|zufrieden|begeistert|"
        "beste|schnell|prima|wunderbar",
    ),
    "fr": (
        "ne marche|ne fonctionne|marche plus|fonctionne plus|casse|panne|bug|erreur|plante|rembours|debit|"
        "deux fois|horrible|nul$|nulle$|catastroph|decu|decevant|bloque|impossible|pas recu|probleme|plainte|"
        "arnaque|lent|aucune reponse|inadmissible|honte",
        "merci|adore|j'aime|genial|super|recommand|excellent|parfait|top$|bravo|satisfait|meilleur|rapide|"
        "formidable|ravi",
    ),
    "es": (
        "no funciona|no puedo|no llego|no me llego|roto|rota$|averia|error|fallo|falla|se cuelga|reembols|"
        "devolucion|cobraron|cobro|dos veces|horrible|fatal|pesim|decepcion|bloquead|problema|queja|estafa|"
        "lento|sin respuesta|verguenza",
        "gracias|encanta|genial|excelente|recomiendo|recomendable|perfect|increible|maravill|content|"
        "satisfech|mejor|rapido|estupend|fenomenal",
    ),
    "it": (
        "non funziona|non riesco|non arrivat|non e arrivat|rotto|guasto|errore|crash|si blocca|bloccat|rimbors|"
        "addebitat|due volte|orribile|pessim|schifo|delus|problema|reclamo|truffa|lento|nessuna risposta|"
        "vergogna",
        "grazie|adoro|fantastic|ottim|consiglio|straordinar|perfett|eccellent|soddisfatt|migliore|veloce|bravi|stupend",
    ),
    "pt": (
        "nao funciona|nao consigo|nao chegou|quebr|estragad|defeito|erro|trava|reembols|estorno|cobrad|"
        "duas vezes|horrivel|pessim|decepc|bloquead|problema|reclamac|golpe|lento|sem resposta|absurdo|vergonha",
        "obrigad|adoro|amei|otim|excelente|recomendo|perfeit|incrivel|maravilh|satisfeit|melhor|rapido|parabens|show$",
    ),
    "nl": (
        "werkt niet|kapot|defect|fout|crasht|loopt vast|terugbetal|geld terug|dubbel|afgeschreven|"
        "verschrikkelijk|slecht|waardeloos|teleurgesteld|geblokkeerd|kan niet|niet ontvangen|niet aangekomen|"
        "probleem|klacht|oplicht|traag|geen antwoord|schandalig",
        "bedankt|dank|geweldig|super|aanrader|aanbevel|top$|perfect|uitstekend|tevreden|beste|snel|"
        "fantastisch|blij|heerlijk",
    ),
    "sv": (
        "fungerar inte|funkar inte|trasig|sonder|fel$|felet|kraschar|hanger sig|aterbetal|pengarna tillbaka|"
        "dubbel|fruktansvard|dalig|uselt|besviken|kan inte|inte kommit|problem|klagomal|bedrag|langsam|"
        "inget svar|skandal",
        "tack|alskar|grym|super|rekommender|toppen|perfekt|utmarkt|nojd|bast$|snabb|fantastisk|underbar|bra$",
    ),
    "cjk": (
        # Japanese
        "動かない|使えない|壊れ|故障|エラー|落ちる|落ちた|クラッシュ|返金|二重|最悪|ひどい|酷い|不具合|繋がらない|"
        "つながらない|ログインできない|届かない|届いていない|困って|困る|遅い|返事がない|返信がない|詐欺|残念|"
        "がっかり|フリーズ|できない|"
        # Chinese, simplified and traditional
        "不能用|用不了|坏了|壞了|错误|錯誤|崩溃|崩潰|闪退|閃退|退款|扣了两次|扣了兩次|重复扣|重複扣|太差|很差|"
        "垃圾|糟糕|失望|打不开|打不開|登不上|无法|無法|没收到|沒收到|问题|問題|投诉|投訴|骗|騙|卡顿|卡頓|不好用|"
        # Korean
        "안 돼|안돼|안 되|안되|작동하지|고장|오류|에러|튕|환불|두 번|두번|이중|최악|별로|실망|먹통|문제|불만|사기|"
        "느려|느림|답변이 없|답이 없|짜증",
        "ありがとう|感謝|最高|大好き|おすすめ|オススメ|素晴らしい|便利|快適|満足|助かり|助かった|完璧|"
        "谢谢|謝謝|感谢|喜欢|喜歡|推荐|推薦|太棒|满意|滿意|方便|完美|给力|給力|靠谱|靠譜|"
        "감사|고마워|고맙|사랑|최고|추천|좋아|좋네|좋습니다|훌륭|만족|편리|편해|완벽|대박",
    ),
}
CUES["ru+uk"] = (f"{CUES['ru'][0]}|{CUES['uk'][0]}", f"{CUES['ru'][1]}|{CUES['uk'][1]}")
LIST_OF = {"ru": "ru+uk", "uk": "ru+uk", "ja": "cjk", "zh": "cjk", "ko": "cjk"}
CJK_LISTS = frozenset({"cjk"})


def fold(text: str) -> str:
    """Lower case, diacritics removed ("çalışmıyor" -> "calismiyor"); Cyrillic й and ї fold too, in post and cue alike."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_UNDECOMPOSED))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _alternation(cues: str, *, anywhere: bool, folded: bool) -> re.Pattern[str]:
    parts = []
    for cue in cues.split("|"):
        whole = cue.endswith("$")
        cue = cue.removesuffix("$")
        body = re.escape(fold(cue) if folded else cue)
        if anywhere:
            parts.append(body)
        else:
            parts.append(rf"(?<!\w){body}" + (r"(?!\w)" if whole else ""))
    return re.compile("|".join(parts))


@cache
def _patterns(key: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    neg, pos = CUES[key]
    anywhere = key in CJK_LISTS
    return (
        _alternation(neg, anywhere=anywhere, folded=not anywhere),
        _alternation(pos, anywhere=anywhere, folded=not anywhere),
    )


def polarity(text: str, lang: str) -> tuple[int, int] | None:
    """Distinct negative and positive cues found in ``text`` for language ``lang``; None: no list for it."""
    key = LIST_OF.get(lang, lang)
    if key not in CUES:
        return None
    neg, pos = _patterns(key)
    body = text.lower() if key in CJK_LISTS else fold(text)
    return len(set(neg.findall(body))), len(set(pos.findall(body)))


def polarity_token(text: str, lang: str) -> str:
    """One word for the post's polarity, like the VADER word: zzpneg2, zzpneg1, zzpneu, zzppos1, zzppos2 ("" without a list)."""
    counts = polarity(text, lang)
    if counts is None:
        return ""
    score = counts[1] - counts[0]
    if score <= -2:
        return "zzpneg2"
    if score == -1:
        return "zzpneg1"
    if score == 0:
        return "zzpneu"
    return "zzppos1" if score == 1 else "zzppos2"
