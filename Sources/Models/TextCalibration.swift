/// What the int8 text tower measures its activations on when it loads, to smooth its query/key/value projection
/// (SmoothQuant): texts like those the service embeds — titles, descriptions, transcripts, on-screen text, author
/// names, tags, a few scripts besides Latin — none of them from the test fixtures, so the fidelity tests measure
/// texts the calibration never saw.
public enum TextCalibration {
    /// SmoothQuant's migration strength: input column j is divided by `max|x_j|^α / max|w_j|^(1-α)`. 0.8 kept the
    /// most in `scripts/bench/int8-smoothing.py` (0.5 and 0.65 less).
    static let alpha: Float = 0.8

    /// What changes int8 vectors when it changes (the texts and α): part of the model revision.
    public static var revision: String { "alpha=\(alpha)\n" + texts.joined(separator: "\n") }

    static let texts: [String] = [
        "Easy weeknight pasta in 15 minutes: garlic, chili flakes and lemon zest",
        "Unboxing the new noise-cancelling headphones — are they worth the upgrade?",
        "My morning routine as a nurse working night shifts #dayinthelife #nurse",
        "so today we're going to fix the leaking tap under the kitchen sink, first turn off the water supply",
        "Top 10 goals of the season ⚽️ which one is your favourite? Comment below!",
        "Handmade ceramic mug, speckled glaze, 350 ml, dishwasher safe",
        "Men's waterproof hiking boots with Vibram sole, size 42, dark brown",
        "SALE 50% OFF TODAY ONLY", "Chef Maria Lopez", "@travelwithsam", "cat, kitten, funny, cute, pets",
        "Ep. 12 | The history of the printing press and how it changed Europe",
        "I tried every instant noodle brand in the store so you don't have to",
        "Watch until the end 😂😂", "LINK IN BIO", "ASMR cooking: crispy pork belly, no talking",
        "Beginner guitar lesson: three chords to play hundreds of songs (G, C, D)",
        "and that's why you should always check the tyre pressure before a long drive, okay see you next week",
        "Dermatologist reacts to viral skincare hacks",
        "Apartment tour: 28 square metres in central Tokyo, ¥85,000 a month",
        "How to solve a quadratic equation: x² − 5x + 6 = 0 step by step",
        "Breaking: heavy rain expected across the north this weekend, flood warnings issued",
        "Wireless charging pad, 15W fast charge, compatible with iPhone and Android",
        "Vintage 1970s leather jacket, excellent condition, free shipping",
        "hey guys welcome back to my channel, in today's video I'll show you how I organise my tiny pantry",
        "Marathon training week 6: long run 28 km, average pace 5:12 min/km",
        "Lo-fi beats to study and relax to 🎧 2 hours",
        "Receta fácil de tortilla de patatas, como la hacía mi abuela",
        "Les meilleures boulangeries de Paris : notre sélection 2026",
        "Die besten Wanderwege in den Alpen für Anfänger",
        "今日のお弁当：鮭の塩焼きと卵焼き", "周末去海边露营，记录一下美好的一天",
        "Как приготовить борщ: простой рецепт", "أفضل الأماكن لزيارتها في المغرب",
        "खाना बनाना सीखें: आसान दाल मखनी", "오늘의 메이크업 튜토리얼",
        "Product photo: white sneakers on a wooden floor, natural light, side view",
        "Subtitles: [music] [applause] thank you all so much for coming tonight",
        "Q: Does this fit a 13-inch laptop? A: Yes, with room for the charger.",
        "The quick brown fox jumps over the lazy dog.",
        "Limited edition vinyl, 180 g, gatefold sleeve, includes download code",
        "Review ★★★★☆ Great sound for the price, but the battery lasts only 6 hours.",
        "Kids' science experiment: make a volcano with baking soda and vinegar",
        "Stock market today: tech shares rally as inflation cools to 2.4%",
        "Dog training tip #3 — reward the calm, not the excitement",
        "Full moon over the harbour, shot on a 200 mm lens at f/5.6, ISO 800",
        "Remote job alert: senior backend engineer (Go, Kubernetes, PostgreSQL), EU time zones",
        "Lyrics: we were young and the summer was endless, singing in the car with the windows down",
        "OCR: MENU · Espresso 2.50 · Cappuccino 3.20 · Croissant 2.00 · Open 7am–6pm",
        "Game walkthrough part 4: the water temple boss, all hidden chests",
        "Renting vs buying a home in 2026 — what the numbers actually say",
        "Minimalist living room makeover on a budget: before and after",
        "A calm, well-paced thriller; the ending surprised me, though the middle drags a little.",
        "Recipe card: 200 g flour, 2 eggs, 300 ml milk, pinch of salt. Rest 30 min, fry in butter.",
    ]
}
