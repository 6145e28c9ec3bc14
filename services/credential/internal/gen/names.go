package gen

// Name pools: common US given and family names, with the apostrophes,
// hyphens, spaces and accents real rosters carry.
var (
	firstNames = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
		"Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles",
		"Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark",
		"Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle",
		"Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Dorothy", "George", "Melissa", "Timothy", "Deborah",
		"Ronald", "Stephanie", "Edward", "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia",
		"Jacob", "Kathleen", "Gary", "Amy", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna", "Stephen",
		"Brenda", "Larry", "Pamela", "Justin", "Emma", "Scott", "Nicole", "Brandon", "Helen", "Benjamin", "Samantha",
		"Samuel", "Katherine", "Gregory", "Christine", "Alexander", "Debra", "Frank", "Rachel", "Raymond", "Carolyn",
		"Patrick", "Janet", "Jack", "Maria", "Dennis", "Catherine", "Jerry", "Heather", "Tyler", "Diane", "Aaron",
		"Ruth", "José", "Julie", "Adam", "Olivia", "Henry", "Joyce", "Nathan", "Virginia", "Douglas", "Victoria",
		"Zachary", "Kelly", "Peter", "Lauren", "Kyle", "Christina", "Noah", "Joan", "Ethan", "Evelyn", "Jeremy",
		"Judith", "Walter", "Megan", "Christian", "Andrea", "Keith", "Cheryl", "Roger", "Hannah", "Terry", "Jacqueline",
		"Austin", "Martha", "Sean", "Gloria", "Gerald", "Teresa", "Carl", "Ann", "Harold", "Sara", "Dylan", "Madison",
		"Arthur", "Frances", "Lawrence", "Kathryn", "Jordan", "Janice", "Jesse", "Jean", "Bryan", "Abigail", "Billy",
		"Alice", "Bruce", "Judy", "Gabriel", "Sophia", "Joe", "Grace", "Logan", "Denise", "Alan", "Amber", "Juan",
		"Doris", "Wayne", "Marilyn", "Elijah", "Danielle", "Randy", "Beverly", "Roy", "Isabella", "Vincent", "Theresa",
		"Ralph", "Diana", "Eugene", "Natalie", "Russell", "Brittany", "Bobby", "Charlotte", "Mason", "Marie", "Philip",
		"Kayla", "Louis", "Alexis", "Renée", "Zoë", "Nguyen", "Wei", "Priya", "Rahul", "Fatima", "Mohammed", "Aisha",
		"Hiroshi", "Yuki", "Sofía", "Mateo", "Camila", "Ana", "Luis", "Carmen", "Jorge", "Lucía", "Chloé", "François"}
	middleNames = []string{"A", "B", "C", "D", "E", "J", "K", "L", "M", "R", "S", "T", "Ann", "Marie", "Lee", "Lynn",
		"James", "John", "Michael", "Elizabeth", "Rose", "Grace", "Edward", "Joseph", "Allen", "Ray", "Jean", "Louise",
		"Quincy", "Alexander", "Nicole", "Renee", "Dean", "Wayne", "Paul", "Jo", ""}
	lastNames = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
		"Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
		"Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
		"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams",
		"Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans",
		"Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
		"Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly", "Howard",
		"Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray",
		"Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross",
		"Foster", "Jimenez", "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Bell", "Coleman", "Butler",
		"Henderson", "Barnes", "Gonzales", "Fisher", "Vasquez", "Simmons", "Romero", "Jordan", "Patterson",
		"Alexander", "Hamilton", "Graham", "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes",
		"Bryant", "Herrera", "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro",
		"Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy", "Wells", "Vargas",
		"Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford", "Olson", "Simpson", "Porter",
		"Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason", "Dixon", "Muñoz", "Hunt", "Hicks", "Holmes",
		"Palmer", "Wagner", "Black", "Robertson", "Boyd", "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills",
		"Meyer", "Rice", "Schmidt", "García", "O'Brien", "O'Connor", "D'Angelo", "Smith-Jones", "St. James",
		"MacArthur", "Van der Berg", "De la Cruz", "Núñez", "Peña", "Yamamoto", "Kowalski", "Nowak", "Okafor",
		"Adeyemi", "Chowdhury", "Shah", "Singh", "Gupta", "Wang", "Zhang", "Liu", "Park", "Choi", "Ivanov", "Müller"}
	// punctuated family names, for the punctuation variant: source spelling → roster spelling.
	punctuated = [][2]string{{"O'Brien", "OBrien"}, {"D'Angelo", "DAngelo"}, {"Smith-Jones", "Smith Jones"},
		{"St. James", "St James"}, {"O'Connor", "O Connor"}, {"Lloyd-Webber", "LloydWebber"}}
	businessWords = []string{"Medical", "Health", "Care", "Clinic", "Pharmacy", "Home Health", "Therapy", "Supply",
		"Ambulance", "Diagnostics", "Wellness", "Family Practice", "Rehab", "Imaging", "Laboratory"}
	cities = []string{"Austin", "Houston", "Dallas", "Los Angeles", "San Diego", "Miami", "Orlando", "New York",
		"Buffalo", "Chicago", "Columbus", "Atlanta", "Phoenix", "Denver", "Seattle", "Boston", "Newark", "Detroit",
		"Charlotte", "Nashville"}
	states = []string{"TX", "CA", "FL", "NY", "IL", "OH", "GA", "AZ", "CO", "WA", "MA", "NJ", "MI", "NC", "TN",
		"PA", "VA", "MN", "OR", "MD"}
)

// specialty is a provider specialty with its NUCC taxonomy code, credential
// and license type.
type specialty struct {
	name, taxonomy, credential, licenseType string
}

var specialties = []specialty{
	{"Family Medicine", "207Q00000X", "MD", "MD"},
	{"Internal Medicine", "207R00000X", "MD", "MD"},
	{"Pediatrics", "208000000X", "MD", "MD"},
	{"Emergency Medicine", "207P00000X", "DO", "DO"},
	{"Cardiovascular Disease", "207RC0000X", "MD", "MD"},
	{"Psychiatry", "2084P0800X", "MD", "MD"},
	{"Obstetrics & Gynecology", "207V00000X", "MD", "MD"},
	{"Orthopaedic Surgery", "207X00000X", "DO", "DO"},
	{"Nurse Practitioner", "363L00000X", "NP", "APRN"},
	{"Physician Assistant", "363A00000X", "PA-C", "PA"},
	{"Registered Nurse", "163W00000X", "RN", "RN"},
	{"Dentist", "122300000X", "DDS", "DDS"},
	{"Clinical Psychologist", "103TC0700X", "PhD", "PSY"},
	{"Physical Therapist", "225100000X", "PT", "PT"},
	{"Pharmacist", "183500000X", "PharmD", "RPH"},
}
