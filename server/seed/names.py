"""Names of the demo city: people, businesses, roads, phone numbers, identity numbers.

Real archives are personal data, so the demo invents its own: Chinese personal names from
common surnames, restaurants and factories, Zhengzhou road names by district, mobile
numbers, and identity / credit codes that are masked the way the real system stores them
(the full numbers are never generated, so they can never leak into the demo).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Final

from server.kernel.districts import District
from server.seed.shape import TWO_CHARACTER_GIVEN_NAME_SHARE

SURNAMES: Final = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
    "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史"
)
GIVEN_CHARS: Final = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚红华玉海鹏辉宇浩欣婷雪琳晨博峰亮斌俊飞"
    "凯旭晓燕丹玲萍梅颖倩佳帅龙阳健文波宁彬鑫淑珍兰春国建志振卫东英秀桂喜福瑞成晶慧"
)


def words(text: str) -> tuple[str, ...]:
    """Space-separated word lists keep the name tables below readable."""
    return tuple(text.split())


DISHES: Final = words(
    "烩面馆 胡辣汤 羊肉汤馆 蒸菜馆 饺子馆 火锅店 小吃店 面馆 快餐店 烧饼铺 大排档 酒家"
)
BUSINESS_WORDS: Final = words("宏达 金源 豫丰 华瑞 鑫盛 永安 恒通 中兴 瑞祥 福源 盛世 正大")
INDUSTRIAL_KINDS: Final = words("食品厂 机械厂 餐饮管理有限公司 酒店 职工食堂 印染厂")
NAMED_COMPANIES: Final[tuple[tuple[str, str, float], ...]] = (
    ("郑州华润燃气股份有限公司", "华润燃气", 18.0),
    ("中国石化销售股份有限公司河南郑州石油分公司", "中石化", 11.0),
    ("郑州新奥燃气有限公司", "新奥燃气", 10.0),
    ("中国石油天然气股份有限公司河南郑州销售分公司", "中石油", 8.0),
    ("郑州港华燃气有限公司", "港华燃气", 6.0),
    ("河南中原液化石油气有限公司", "中原液化气", 5.0),
)
"""(name, short name, market weight) of the large companies; smaller ones are generated."""
GENERATED_COMPANY_WORDS: Final = words(
    "金盾 豫通 安泰 恒源 中州 嵩山 黄河 绿城 商都 瑞丰 永兴 顺达 "
    "华源 兴隆 光明 平安 安顺 东方 长城 正阳 祥和 天然 民生 康泰"
)
INSPECTION_AGENCIES: Final = (
    "郑州市特种设备检验检测研究院气瓶检验站",
    "河南省锅炉压力容器检验技术科学研究院郑州气瓶检验站",
    "郑州安平气瓶检测有限公司",
    "郑州市中原气瓶检验站",
)
ROADS: Final[dict[str, tuple[str, ...]]] = {
    "410102": words("中原路 建设路 桐柏路 伏牛路 嵩山路 西站路 棉纺路 华山路"),
    "410103": words("大学路 航海路 长江路 嵩山南路 淮河路 兴华街 京广路"),
    "410104": words("紫荆山路 商城路 城东路 南关街 东大街 陇海东路 航海东路"),
    "410105": words("花园路 经三路 农业路 文化路 北环路 金水路 东风路 纬五路"),
    "410108": words("天河路 开元路 长兴路 英才街 江山路 清华园路 弘湖路"),
    "410106": words("济源路 中心路 工业路 新安路 峡窝路"),
    "410182": words("索河路 京城路 郑上路 汜水路 广武路 康泰路"),
    "410184": words("中华路 轩辕路 新建路 文化路 郑新路 黄帝路"),
    "410122": words("青年路 商都大道 官渡大街 牟州大道 建设路 万胜路"),
    "410171": words("第八大街 经北三路 航海东路 第十五大街 经南八路 朝凤路"),
    "410172": words("科学大道 长椿路 莲花街 西三环 瑞达路 合欢街"),
}
GENERIC_ROADS: Final = words("人民路 解放路 建设路 幸福路 团结路 和平路")
PHONE_PREFIXES: Final = words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "166 176 177 178 180 181 182 183 185 186 187 188 189 198 199"
)
ID_REGION_CODES_ELSEWHERE: Final = words(
    "410122 410181 410182 410183 410184 410185 410302 410402 410702 411302 411502 411702"
)
"""Identity-number regions of customers born outside the city (elsewhere in Henan)."""
PLATE_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def pick(seq: Sequence[str], rand: Callable[[], float]) -> str:
    """``random.choice`` without its overhead (the seed calls it millions of times)."""
    return seq[int(rand() * len(seq))]


def between(lo: int, hi: int, rand: Callable[[], float]) -> int:
    """``random.randint(lo, hi)`` without its overhead."""
    return lo + int(rand() * (hi - lo + 1))


def person_name(rng: random.Random) -> str:
    rand = rng.random
    given = pick(GIVEN_CHARS, rand)
    if rand() < TWO_CHARACTER_GIVEN_NAME_SHARE:
        given += pick(GIVEN_CHARS, rand)
    return pick(SURNAMES, rand) + given


def phone_number(rng: random.Random) -> str:
    rand = rng.random
    return f"{pick(PHONE_PREFIXES, rand)}{int(rand() * 100_000_000):08d}"


def street_address(district: District, rng: random.Random) -> str:
    rand = rng.random
    road = pick(ROADS.get(district.code, GENERIC_ROADS), rand)
    return f"郑州市{district.name}{road}{between(1, 300, rand)}号"


def home_address(district: District, rng: random.Random) -> str:
    rand = rng.random
    return (
        f"{street_address(district, rng)}{between(1, 30, rand)}号楼{between(1, 4, rand)}单元"
        f"{between(1, 28, rand)}{between(1, 4, rand):02d}"
    )


def masked_id(region: str, rng: random.Random) -> str:
    """A resident identity number as the platform stores it: region, 8 stars, last four.

    The full 18-character number is never generated, so it can never leak into the demo.
    """
    rand = rng.random
    check = "X" if rand() < 1 / 11 else str(int(rand() * 10))
    return f"{region}********{int(rand() * 1000):03d}{check}"


def masked_credit_code(region: str, rng: random.Random, individual: bool) -> str:
    """A business's unified social credit code (统一社会信用代码), masked like an id."""
    rand = rng.random
    prefix = "92" if individual else "91"
    return f"{prefix}{region}********{pick(PLATE_CHARS, rand)}{pick(PLATE_CHARS, rand)}"


def plate_number(rng: random.Random) -> str:
    rand = rng.random
    return "豫A·" + "".join(pick(PLATE_CHARS, rand) for _ in range(5))
