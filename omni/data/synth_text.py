"""Sentences for the embedded corpus: on-device assistant commands and short dictation.

A template grammar rather than a fixed list, so the corpus scales to any size with few exact
repeats, while staying in one domain with a closed vocabulary of several hundred words (the
regime the paper's on-device models target, small enough for a tiny model to learn on CPU).
Transcripts follow LibriSpeech conventions: upper case, numbers and digit strings spelled out
as words, apostrophes kept. Everything is drawn from a seeded `random.Random`, never from a
set's iteration order, so the same seed gives the same text under any PYTHONHASHSEED.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence

MAX_ATTEMPTS_PER_SENTENCE = 2000
"""Candidates tried for one sentence before the word limits are declared unsatisfiable."""
DUPLICATE_PATIENCE = 50
"""Candidates tried per wanted sentence before accepting repeats (a tiny grammar space)."""
JOINERS = ("and", "then", "and then", "and also")
"""Join two commands when one alone is shorter than `min_words`."""

# Letter sequences written as LibriSpeech would ("A M") but spoken as abbreviations.
SPOKEN_FORMS = {"a m": "a.m.", "p m": "p.m."}

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
).split()
TENS_ORDINALS = {20: "twentieth", 30: "thirtieth"}
DIGIT_WORDS = ONES[:10] + ["oh"]
DAYS_IN_MONTH_MAX = 31
# Ranges (inclusive) of the numbers the commands use.
DIGIT_STRING_LENGTH = (3, 7)
SMALL_NUMBERS = (2, 20)
NUMBER_MAGNITUDES = ((2, 99), (100, 999), (1000, 99999))
PERCENTS = tuple(range(10, 101, 10))
THERMOSTAT_DEGREES = (60, 78)
TIMER_AMOUNTS = (1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 45, 90)
IDIOMATIC_TIME_SHARE = 0.15
"""Share of times said as 'half past', 'quarter to', 'noon' rather than as hour and minutes."""
HOURS = ONES[1:13]
MONTHS = ("january february march april may june july august september october november december").split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()

FIRST_NAMES = (
    "james mary john patricia robert jennifer michael linda william elizabeth david barbara richard "
    "susan joseph jessica thomas sarah charles karen daniel nancy matthew lisa anthony betty mark "
    "sandra steven ashley paul kimberly andrew emily joshua donna kevin michelle brian carol george "
    "amanda timothy melissa ronald deborah jason stephanie jeffrey rebecca ryan sharon jacob laura "
    "gary cynthia nicholas amy eric kathleen jonathan angela oliver sophia lucas olivia noah emma "
    "ethan ava liam mia leo chloe henry grace jack zoe sam hannah max ruby tom alice ben maya"
).split()
SURNAMES = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez wilson anderson "
    "taylor moore jackson martin lee thompson white harris clark lewis robinson walker young allen "
    "king wright scott hill green adams baker nelson carter mitchell roberts turner phillips "
    "campbell parker evans edwards collins stewart morris murphy cook rogers morgan cooper"
).split()
RELATIONS = (
    "mom|dad|grandma|grandpa|my sister|my brother|my wife|my husband|my boss|the office|"
    "the doctor|the dentist|the babysitter|aunt susan|uncle joe|my neighbor"
).split("|")
CITIES = (
    "boston|chicago|seattle|denver|austin|dallas|houston|phoenix|atlanta|miami|portland|detroit|"
    "nashville|memphis|orlando|tampa|london|paris|berlin|madrid|rome|tokyo|sydney|toronto|"
    "vancouver|dublin|amsterdam|vienna|prague|lisbon|new york|san francisco|los angeles|"
    "las vegas|san diego|new orleans|kansas city|salt lake city|mexico city|hong kong|"
    "philadelphia|baltimore|pittsburgh|minneapolis|cleveland|sacramento|honolulu|anchorage|"
    "montreal|edinburgh|barcelona|singapore|cairo|oslo|stockholm|helsinki|athens|seoul"
).split("|")
PLACES = (
    "gas station|coffee shop|pharmacy|grocery store|hospital|airport|train station|post office|"
    "library|bank|gym|park|museum|restaurant|hotel|school|office|mall|bakery|hardware store|"
    "parking garage|bus stop|beach|zoo|stadium|movie theater|police station|car wash|"
    "pizza place|farmers market|vet|dry cleaner|bookstore|swimming pool|ice cream shop"
).split("|")
ROOMS = (
    "kitchen|living room|bedroom|bathroom|garage|hallway|basement|office|dining room|porch|"
    "backyard|nursery|attic|laundry room|guest room|front yard"
).split("|")
DEVICES = (
    "lights|lamp|fan|heater|air conditioner|t v|speaker|coffee maker|dishwasher|oven|"
    "sprinklers|humidifier|ceiling fan|radio|fireplace|night light"
).split("|")
GENRES = (
    "jazz|rock|classical|country|hip hop|blues|reggae|pop|folk|soul|piano|metal|disco|"
    "gospel|lo fi|salsa|opera|punk|techno|acoustic"
).split("|")
MEDIA = (
    "my workout playlist|something relaxing|the latest episode of my podcast|the news|"
    "my morning mix|white noise|rain sounds|the radio|my favorite songs|the audiobook|"
    "something upbeat|music for studying|the top hits|my road trip playlist"
).split("|")
GROCERIES = (
    "milk|eggs|bread|butter|cheese|apples|bananas|oranges|coffee|tea|rice|pasta|tomatoes|onions|"
    "potatoes|chicken|salmon|yogurt|cereal|flour|sugar|honey|peanut butter|orange juice|"
    "paper towels|toilet paper|dish soap|toothpaste|shampoo|batteries|light bulbs|dog food|"
    "cat litter|diapers|garlic|lemons|carrots|spinach|avocados|strawberries|olive oil|"
    "ground beef|tortillas|ice cream|cookies|crackers|sparkling water|laundry detergent|napkins"
).split("|")
ITEMS = (
    "keys|wallet|phone|charger|laptop|umbrella|passport|glasses|jacket|backpack|headphones|"
    "water bottle|notebook|gym bag|sunglasses|lunch box|badge|tickets|camera|scarf|gloves|"
    "homework|report|invoice|receipt|contract|package|documents"
).split("|")
TASKS = (
    "take out the trash|water the plants|walk the dog|feed the cat|call the bank|pay the rent|"
    "pay the electric bill|buy a birthday present|pick up the kids|drop off the dry cleaning|"
    "book a table|renew my passport|return the library books|charge the car|clean the fridge|"
    "send the invoice|print the tickets|check the mail|schedule a haircut|start the laundry|"
    "finish the report|email the landlord|refill my prescription|buy more coffee|call grandma|"
    "move the car|cancel the gym membership|order new glasses|back up my laptop|stretch"
).split("|")
EVENTS = (
    "dentist appointment|team meeting|lunch with {name}|dinner with {relation}|yoga class|"
    "soccer practice|parent teacher conference|flight to {city}|job interview|"
    "doctor's appointment|haircut|piano lesson|book club|birthday party|oil change"
).split("|")
LANDMARKS = (
    "the eiffel tower|mount everest|the empire state building|the golden gate bridge|"
    "the statue of liberty|the great wall of china|big ben|the space needle|"
    "the grand canyon|niagara falls"
).split("|")
UNITS = (
    "miles|kilometers|pounds|kilograms|ounces|grams|cups|liters|gallons|inches|feet|meters|teaspoons|tablespoons"
).split("|")
TEMPERATURE_WORDS = "cold|hot|warm|windy|humid|sunny|cloudy|foggy".split("|")
WEATHER_EVENTS = "rain|snow|hail|storm|be sunny|be windy|freeze".split("|")
DICTATION_WORDS = (
    "meeting|project|deadline|presentation|party|game|movie|concert|trip|appointment|"
    "interview|class|surprise|plan|dinner|lunch|breakfast|show|flight|delivery"
).split("|")
FEELINGS = "great|tired|excited|sorry|happy|late|busy|ready|starving|lost|nervous|proud".split("|")
TIMES_OF_DAY = (
    "this morning|this afternoon|this evening|tonight|tomorrow morning|tomorrow night|"
    "later today|next week|this weekend|right now|in a minute|after lunch|"
    "before dinner|first thing tomorrow"
).split("|")

TEMPLATES: tuple[str, ...] = (
    # alarms, timers
    "set an alarm for {time}",
    "wake me up at {time}",
    "set an alarm for {time} {day}",
    "set a timer for {duration}",
    "cancel my {time} alarm",
    "snooze for {small} minutes",
    "turn off all my alarms",
    "how much time is left on my timer",
    "start a timer for {duration}",
    "set a {food} timer for {duration}",
    "remind me in {duration} to {task}",
    # calls, messages
    "call {contact}",
    "call {contact} on speaker",
    "call {contact} on {possessive} cell",
    "dial {digits}",
    "call extension {digits}",
    "text {contact} {dictation}",
    "send a message to {contact} saying {dictation}",
    "read my messages",
    "reply to {contact} {dictation}",
    "tell {contact} {dictation}",
    "video call {contact}",
    "did {contact} call me",
    "redial the last number",
    "what's {name}'s number",
    # smart home
    "turn {onoff} the {room} {device}",
    "turn the {device} {onoff}",
    "switch {onoff} the {device}",
    "dim the {room} lights to {percent} percent",
    "set the thermostat to {temperature} degrees",
    "make it {warmer} in the {room}",
    "lock the front door",
    "is the garage door open",
    "close the {room} blinds",
    "set the {room} lights to {color}",
    "start the robot vacuum",
    "turn {onoff} the lights in the {room}",
    "set the heat to {temperature}",
    # media
    "play {media}",
    "play some {genre}",
    "play some {genre} music",
    "play {genre} in the {room}",
    "skip this song",
    "pause the music",
    "volume up",
    "turn it down",
    "set the volume to {small}",
    "what song is this",
    "play it again",
    "shuffle my {genre} playlist",
    "resume the podcast",
    "stop",
    "next song",
    "go back",
    "like this song",
    # weather
    "what's the weather {when}",
    "what's the weather in {city}",
    "will it {weather_event} {when}",
    "is it going to be {weather_word} {when}",
    "how {weather_word} is it in {city}",
    "do i need an umbrella {when}",
    "what's the temperature outside",
    "when is sunset {when}",
    "what's the forecast for {weekday}",
    # navigation, places
    "navigate to the nearest {place}",
    "directions to {city}",
    "take me home",
    "how far is {city} from here",
    "how long will it take to get to the {place}",
    "find a {place} near me",
    "is the {place} open {when}",
    "when does the {place} close",
    "avoid tolls",
    "share my location with {contact}",
    "how's the traffic on the way to work",
    "find parking near the {place}",
    # calendar, reminders
    "remind me to {task} {when}",
    "remind me to {task} at {time}",
    "add {event} to my calendar for {date}",
    "what's on my calendar {when}",
    "schedule {event} on {date} at {time}",
    "move my {event} to {weekday}",
    "when is my next meeting",
    "cancel my {event}",
    "am i free {when}",
    "create a reminder to {task}",
    # lists, shopping
    "add {grocery} to my shopping list",
    "add {grocery} and {grocery} to the list",
    "what's on my shopping list",
    "remove {grocery} from my list",
    "order more {grocery}",
    "do we need {grocery}",
    "where are my {item}",
    # numbers, facts, questions
    "what's {number} plus {number}",
    "what's {number} times {small}",
    "what's {small} percent of {number}",
    "convert {number} {unit} to {unit}",
    "how many {unit} are in a {unit_single}",
    "what time is it",
    "what time is it in {city}",
    "what's today's date",
    "what day is {date}",
    "how tall is {landmark}",
    "how old is {landmark}",
    "tell me a joke",
    "flip a coin",
    "roll a die",
    "pick a number between one and {number}",
    "how do you spell {spell_word}",
    "what does {spell_word} mean",
    "how many days until {date}",
    "who is {name} {surname}",
    "my pin is {digits}",
    "the code is {digits}",
    "my flight number is {digits}",
    "the door code is {digits}",
    "my zip code is {digits}",
    # dictation
    "{dictation}",
    "{dictation}",
    "{dictation}",
    "{dictation}",
    "{dictation}",
    "{dictation}",
    "take a note {dictation}",
    "write an email to {name} saying {dictation}",
)

DICTATION_TEMPLATES: tuple[str, ...] = (
    "i'll be home by {time}",
    "i'm running {small} minutes late",
    "can you pick up {grocery} on your way home",
    "the {dictation_word} has been moved to {weekday}",
    "don't forget to bring your {item}",
    "thanks for {meal} last night",
    "happy birthday {name}",
    "see you at the {place} at {time}",
    "i'm stuck in traffic",
    "let's meet at the {place} {when}",
    "please call me back when you get this",
    "the package arrived {when}",
    "i left my {item} at the {place}",
    "i'm {feeling}",
    "i'm so {feeling} about the {dictation_word}",
    "we're out of {grocery}",
    "are you coming to the {dictation_word}",
    "the {dictation_word} starts at {time}",
    "can we talk {when}",
    "i'll call you {when}",
    "did you remember to {task}",
    "don't forget to {task}",
    "i can't make it {when}",
    "that sounds {adjective}",
    "the {dictation_word} was {adjective}",
    "running late be there in {duration}",
    "what time is the {dictation_word}",
    "is {name} coming {when}",
    "love you see you soon",
    "i need to {task} {when}",
    "my {item} is in the {room}",
    "the kids are at the {place}",
    "we landed in {city}",
    "how was the {dictation_word}",
    "it's {adjective} here in {city}",
    "i'm at the {place} do you need anything",
    "just leaving the {place} now",
    "meet me in the {room}",
    "the {dictation_word} went {adverb}",
    "can you send me the {item}",
    "i'm on my way",
    "it's your turn to {task}",
    "dinner is ready",
    "we should go to {city} in {month}",
    "i'll be in {city} from {date} to {date}",
    "it costs {number} dollars",
    "i owe you {number} dollars",
)

ADJECTIVES = (
    "great|perfect|fine|good|terrible|amazing|fun|awesome|boring|crazy|lovely|wonderful|"
    "expensive|quiet|busy|beautiful|freezing"
).split("|")
ADVERBS = "well|badly|really well|great|okay|fine|perfectly".split("|")
COLORS = "red|blue|green|purple|orange|yellow|pink|white|warm white".split("|")
SPELL_WORDS = (
    "necessary|rhythm|receipt|separate|definitely|accommodate|tomorrow|calendar|"
    "restaurant|wednesday|february|privilege|conscience|occasionally|embarrass|"
    "ubiquitous|serendipity|ephemeral"
).split("|")
MEALS = "dinner|lunch|breakfast|the coffee|the drinks|the ride|the help|everything".split("|")
FOOD_TIMERS = "pasta|egg|pizza|rice|bread|tea|cookie|potato".split("|")


def number_words(n: int) -> str:
    """LibriSpeech spells numbers out; this covers 0..999,999 the way people say them."""
    if n < 20:
        return ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS[tens] + (f" {ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    return f"{number_words(thousands)} thousand" + (f" {number_words(rest)}" if rest else "")


def ordinal_words(n: int) -> str:
    """Day-of-month ordinals (1..31): 'twenty third', 'thirtieth'."""
    if n < 20:
        return ORDINALS[n - 1]
    tens, ones = divmod(n, 10)
    return TENS_ORDINALS[tens * 10] if ones == 0 else f"{TENS[tens]} {ORDINALS[ones - 1]}"


def _time(rng: random.Random) -> str:
    hour = rng.choice(HOURS)
    minute = rng.choice(
        (
            "o'clock",
            "fifteen",
            "thirty",
            "forty five",
            "oh five",
            "ten",
            "twenty",
            "fifty",
            "forty",
            "twenty five",
            "",
            "",
            "",
        )
    )
    suffix = rng.choice(("a m", "p m", "in the morning", "tonight", "", "", ""))
    if rng.random() < IDIOMATIC_TIME_SHARE:
        return rng.choice((f"half past {hour}", f"quarter to {hour}", f"quarter past {hour}", "noon", "midnight"))
    return " ".join(part for part in (hour, minute, suffix) if part)


def _duration(rng: random.Random) -> str:
    amount = rng.choice(TIMER_AMOUNTS)
    unit = rng.choice(("minute", "second", "hour"))
    if amount == 1:
        return rng.choice((f"one {unit}", f"a {unit}", "an hour and a half", "half an hour"))
    return f"{number_words(amount)} {unit}s"


def _digits(rng: random.Random) -> str:
    """PINs, codes, numbers: digit by digit, with 'oh' for zero as people often say it."""
    length = rng.randint(*DIGIT_STRING_LENGTH)
    return " ".join(rng.choice(DIGIT_WORDS) if i else rng.choice(ONES[1:10]) for i in range(length))


def _calendar_date(rng: random.Random) -> str:
    day = ordinal_words(rng.randint(1, DAYS_IN_MONTH_MAX))
    month = rng.choice(MONTHS)
    return rng.choice((f"{month} {day}", f"the {day} of {month}", f"{rng.choice(WEEKDAYS)} the {day}"))


def _date(rng: random.Random) -> str:
    return rng.choice((_calendar_date(rng), rng.choice(WEEKDAYS), f"next {rng.choice(WEEKDAYS)}"))


def _when(rng: random.Random) -> str:
    return rng.choice(
        (
            rng.choice(TIMES_OF_DAY),
            "today",
            "tomorrow",
            f"on {rng.choice(WEEKDAYS)}",
            f"next {rng.choice(WEEKDAYS)}",
            f"on {_calendar_date(rng)}",
            f"at {_time(rng)}",
        )
    )


def _contact(rng: random.Random) -> str:
    return rng.choice(
        (rng.choice(FIRST_NAMES), rng.choice(RELATIONS), f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}")
    )


def _pick(options: Sequence[str]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(options)


SLOTS: Mapping[str, Callable[[random.Random], str]] = {
    "time": _time,
    "duration": _duration,
    "digits": _digits,
    "date": _date,
    "when": _when,
    "contact": _contact,
    "day": _pick(("today", "tomorrow", "on weekdays", "every day", "on saturday", "on sunday")),
    "small": lambda rng: number_words(rng.randint(*SMALL_NUMBERS)),
    "number": lambda rng: number_words(rng.randint(*rng.choice(NUMBER_MAGNITUDES))),
    "percent": lambda rng: number_words(rng.choice(PERCENTS)),
    "temperature": lambda rng: number_words(rng.randint(*THERMOSTAT_DEGREES)),
    "name": _pick(FIRST_NAMES),
    "surname": _pick(SURNAMES),
    "relation": _pick(RELATIONS),
    "possessive": _pick(("his", "her", "their")),
    "city": _pick(CITIES),
    "place": _pick(PLACES),
    "room": _pick(ROOMS),
    "device": _pick(DEVICES),
    "onoff": _pick(("on", "off")),
    "warmer": _pick(("warmer", "cooler", "brighter", "darker")),
    "color": _pick(COLORS),
    "genre": _pick(GENRES),
    "media": _pick(MEDIA),
    "grocery": _pick(GROCERIES),
    "food": _pick(FOOD_TIMERS),
    "item": _pick(ITEMS),
    "task": _pick(TASKS),
    "event": _pick(EVENTS),
    "landmark": _pick(LANDMARKS),
    "unit": _pick(UNITS),
    "unit_single": _pick(("mile", "kilometer", "pound", "kilogram", "cup", "gallon", "foot", "meter")),
    "weather_word": _pick(TEMPERATURE_WORDS),
    "weather_event": _pick(WEATHER_EVENTS),
    "weekday": _pick(WEEKDAYS),
    "month": _pick(MONTHS),
    "spell_word": _pick(SPELL_WORDS),
    "dictation": _pick(DICTATION_TEMPLATES),
    "dictation_word": _pick(DICTATION_WORDS),
    "feeling": _pick(FEELINGS),
    "adjective": _pick(ADJECTIVES),
    "adverb": _pick(ADVERBS),
    "meal": _pick(MEALS),
}
_SLOT = re.compile(r"\{(\w+)\}")


def expand(template: str, rng: random.Random) -> str:
    """Fill slots left to right until none is left (slot values may contain slots)."""
    while _SLOT.search(template):
        template = _SLOT.sub(lambda match: SLOTS[match.group(1)](rng), template)
    return template


class SentenceGenerator:
    """Draws transcripts within the word limits, using only characters of `alphabet`."""

    def __init__(self, rng: random.Random, min_words: int, max_words: int, alphabet: str) -> None:
        if min_words > max_words:
            raise ValueError(f"config keys 'synth.min_words' ({min_words}) > 'synth.max_words' ({max_words})")
        self.rng = rng
        self.min_words = min_words
        self.max_words = max_words
        self.allowed = set(alphabet.upper())

    def _candidate(self) -> str:
        words = expand(self.rng.choice(TEMPLATES), self.rng).split()
        while len(words) < self.min_words:
            words += [self.rng.choice(JOINERS)] + expand(self.rng.choice(TEMPLATES), self.rng).split()
        return " ".join(words).upper()

    def sentence(self) -> str:
        for _ in range(MAX_ATTEMPTS_PER_SENTENCE):
            text = self._candidate()
            if len(text.split()) <= self.max_words and set(text) <= self.allowed:
                return text
        raise ValueError(
            f"config keys 'synth.min_words'/'synth.max_words' ({self.min_words}..{self.max_words}) with "
            f"'data.alphabet' allow no sentence of the grammar after {MAX_ATTEMPTS_PER_SENTENCE} tries"
        )


def generate_splits(
    seed: int,
    sizes: Mapping[str, int],
    min_words: int,
    max_words: int,
    alphabet: str,
) -> dict[str, list[str]]:
    """Transcripts per split, distinct across splits where the grammar allows.

    Splits are filled in the order of `sizes` with one RNG per split, so put evaluation splits
    first: their sentences then do not depend on the training size, and training sentences
    avoid them (held-out sentences measure recognition, not memorised strings).
    """
    seen: set[str] = set()
    splits: dict[str, list[str]] = {}
    for split, count in sizes.items():
        generator = SentenceGenerator(random.Random(f"{seed}:text:{split}"), min_words, max_words, alphabet)
        sentences: list[str] = []
        for _ in range(count * DUPLICATE_PATIENCE):
            if len(sentences) == count:
                break
            text = generator.sentence()
            if text not in seen:
                seen.add(text)
                sentences.append(text)
        while len(sentences) < count:  # the grammar space is exhausted: repeats are unavoidable
            sentences.append(generator.sentence())
        splits[split] = sentences
    return splits


def spoken_form(transcript: str) -> str:
    """What espeak should read: lower case (it spells out all-caps words like 'IT') and
    letter pairs written as abbreviations so 'A M' is said 'a.m.', not 'uh em'."""
    text = f" {transcript.lower()} "
    for written, spoken in SPOKEN_FORMS.items():
        text = text.replace(f" {written} ", f" {spoken} ")
    return text.strip()


def vocabulary(sentences: Sequence[str]) -> set[str]:
    return {word for sentence in sentences for word in sentence.split()}
